"""hotpath"""
