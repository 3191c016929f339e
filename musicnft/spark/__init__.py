"""Spark Structured Streaming over the lake (issue 16): `job.run_score_job` scores the `raw/` drops
with VADER and the promoted sentiment model into `scored/`; `entrypoint` is the script
spark-submit (and EMR Serverless) runs. Imports only what the job needs (the package is zipped for
EMR Serverless): the post contract, the hot path's scorers, pyarrow and pyspark."""
