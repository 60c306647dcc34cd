"""The Serverless Workflow DSL 1.0 subset this service runs: parsing, checking against the contracts, the model."""
