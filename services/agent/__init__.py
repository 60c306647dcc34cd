"""Agent service: registers agents, runs their executions, helps find them."""
