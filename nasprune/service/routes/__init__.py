"""The service's endpoints, one module by resource."""
