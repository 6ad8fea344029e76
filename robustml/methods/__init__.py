"""Two-stage robustness methods that need no training group labels: Just Train Twice."""

from robustml.methods.jtt import (UpsampledOrder, check_lambda_up, error_set, upsampled_indices,
                                  upweight_loss_weights)

__all__ = ["UpsampledOrder", "check_lambda_up", "error_set", "upsampled_indices",
           "upweight_loss_weights"]
