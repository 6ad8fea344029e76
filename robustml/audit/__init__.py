"""Where does a trained model fail: per-group accuracy, discovered slices, the stress test."""

from robustml.audit.audit import AuditResult, audit_model, audit_predictions, model_outputs
from robustml.audit.slices import Slice, describe_slice, discover_slices
from robustml.audit.write import audit_record, render_audit_md, write_audit

__all__ = ["AuditResult", "Slice", "audit_model", "audit_predictions", "audit_record", "describe_slice",
           "discover_slices", "model_outputs", "render_audit_md", "write_audit"]
