"""ecgscan.classify"""
