"""adapters/bigquery"""
