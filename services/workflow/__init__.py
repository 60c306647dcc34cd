"""The workflow service: durable Serverless Workflow definitions over the mesh contracts."""
