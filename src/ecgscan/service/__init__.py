"""ecgscan.service"""
