"""The models: the catalogue (/v1/models), the seed's /v1/status, and administration (load,
unload, pull): routes, request models, the status and catalogue views, and a serving object."""
