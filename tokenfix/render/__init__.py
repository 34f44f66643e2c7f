"""Rendering of plain results: rich layouts for people (render.tables and the modules beside
it), JSON and CSV for machines (render.json, render.csv: no rich on those paths).

stdout carries the result only; messages and progress go to stderr.
"""
