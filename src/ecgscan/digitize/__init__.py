"""ecgscan.digitize"""
