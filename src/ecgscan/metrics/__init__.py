"""ecgscan.metrics"""
