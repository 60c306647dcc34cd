"""The peers the benchmark compares the mesh with, and the processes it runs for both sides."""
