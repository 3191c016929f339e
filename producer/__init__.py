"""The producer process: read a source, normalize each line into a post, put posts on the stream.

Sources (`replay` here; X and Bluesky later) yield raw lines; sinks (the local stream here; Kinesis
later) are ports. The producer owns batching, pacing, dead-lettering and graceful shutdown.
"""
