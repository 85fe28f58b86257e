"""ecgscan.train"""
