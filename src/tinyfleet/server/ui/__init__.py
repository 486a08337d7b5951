"""The operators' dashboard under /ui/: server-rendered pages over the service layer, same roles as the API."""
