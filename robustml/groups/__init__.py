"""Group inference without group labels: partitions from a reference model (error split and JTT's
error set, EIIL, per-class feature clustering), and their agreement with true groups where those
are known."""

from robustml.groups.agreement import partition_agreement
from robustml.groups.clustering import ClassClusters, cluster_names, cluster_within_classes
from robustml.groups.eiil import EIILResult, eiil_environments
from robustml.groups.error_split import error_set, error_split, error_split_names
from robustml.groups.partition import InferredGroups, selection_metrics

__all__ = ["ClassClusters", "EIILResult", "InferredGroups", "selection_metrics", "cluster_names", "cluster_within_classes", "eiil_environments",
           "error_set", "error_split", "error_split_names", "partition_agreement"]
