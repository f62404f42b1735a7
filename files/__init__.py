"""Bytes in and out: uploaded CSV and Excel files read into rows, the table written as CSV and
Excel, the error file, and the checks for spreadsheet damage. Pure Python: no Flask, no SQL.

`upload.open_upload` is the way in for an uploaded file (`bundle.open_bundle` first, for an upload
that may hold several tables: a workbook's sheets, a zip's CSV files); everything a user can get wrong about a
file is a `problems.Problem` with its line and column.
"""
