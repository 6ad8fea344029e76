"""Where a trained model fails (per-group accuracy, slices, stress test); what in the data makes it fail (data audit)."""

from robustml.audit.audit import AuditResult, audit_model, audit_predictions, model_outputs
from robustml.audit.data_audit import audit_data
from robustml.audit.data_findings import DataAuditResult, Finding
from robustml.audit.data_write import (data_audit_record, render_data_audit_md, render_data_summary,
                                       write_data_audit)
from robustml.audit.slices import Slice, describe_slice, discover_slices
from robustml.audit.write import audit_record, render_audit_md, write_audit

__all__ = ["AuditResult", "DataAuditResult", "Finding", "Slice", "audit_data", "audit_model", "audit_predictions",
           "audit_record", "data_audit_record", "describe_slice", "discover_slices", "model_outputs",
           "render_audit_md", "render_data_audit_md", "render_data_summary", "write_audit", "write_data_audit"]
