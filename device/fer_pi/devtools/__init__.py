"""Developer tools that run the real pipeline: fer-bench (latency, FPS, remote Pi runs),
the soak run, and the generated clips tests and demos use."""
