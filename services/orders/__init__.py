"""OrderService: the edge of the mesh and the system of record for orders."""
