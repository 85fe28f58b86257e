"""ecgscan.render"""
