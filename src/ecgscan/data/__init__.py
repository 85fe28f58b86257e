"""ECG records, datasets (PTB-XL with the Challenge labels) and built-in examples."""

from .record import LEADS, Record, normalize_lead_name, read_record

__all__ = ["LEADS", "Record", "normalize_lead_name", "read_record"]
