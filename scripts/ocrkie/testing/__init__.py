"""Stand-ins for what tests and benchmarks cannot reach: a fake of the Upstage API (also for
trying the API path offline), a fake AWS Batch worker over moto (needs the development
dependencies), and a corpus of bad inputs."""
