"""The keyworking domain on the service side: projection storage, write hook, operations."""
