"""Every write to profiles. Keyword-only arguments, <noun>_<verb>, atomic.

A package: ``observations`` (the pipeline's bulk path and identity resolution), ``identity_rules``, ``merges``
(the merge journal and undo), ``golden`` (lineage and survivorship), ``matching`` (probabilistic matching) and
``notes``. Everything public is re-exported here, so ``from profiles.services import X`` keeps working.
"""

from profiles.services.golden import golden_record_recompute, trait_policies_install
from profiles.services.identity_rules import BUILTIN_BLOCKED_VALUES, identity_rules_install
from profiles.services.merges import (
    MergePair,
    MergeRefused,
    live_profile_id,
    merge_check,
    merge_undo,
    never_merge_add,
    profiles_merge,
    profiles_merge_batch,
)
from profiles.services.observations import (
    IDENTITY_PRIORITY,
    Observation,
    identities_resolve,
    observations_apply,
    profile_traits_update,
)
from profiles.services.personal_data import PERSONAL_DATA_MODELS, personal_data_erase, personal_data_export

__all__ = [
    "BUILTIN_BLOCKED_VALUES",
    "IDENTITY_PRIORITY",
    "PERSONAL_DATA_MODELS",
    "MergePair",
    "MergeRefused",
    "Observation",
    "golden_record_recompute",
    "identities_resolve",
    "identity_rules_install",
    "live_profile_id",
    "merge_check",
    "merge_undo",
    "never_merge_add",
    "observations_apply",
    "personal_data_erase",
    "personal_data_export",
    "profile_traits_update",
    "profiles_merge",
    "profiles_merge_batch",
    "trait_policies_install",
]

# Probabilistic matching (profiles.services.matching).
from profiles.services.matching import (  # noqa: E402
    CandidateDecisionError,
    MatchResult,
    MatchRuleInvalid,
    candidate_decide,
    match_incremental,
    match_keys_refresh,
    match_rule_delete,
    match_rule_save,
    match_rules_install,
    unify_full,
)

__all__ += [
    "CandidateDecisionError",
    "MatchResult",
    "MatchRuleInvalid",
    "candidate_decide",
    "match_incremental",
    "match_keys_refresh",
    "match_rule_delete",
    "match_rule_save",
    "match_rules_install",
    "unify_full",
]

# Computed traits (profiles.services.computed).
from profiles.services.computed import (  # noqa: E402
    ComputedTraitInvalid,
    computed_trait_create,
    computed_trait_delete,
    computed_trait_recompute,
    computed_trait_update,
    computed_traits_install,
    computed_traits_recompute_all,
    computed_traits_recompute_enqueue,
    computed_values_refresh,
)

__all__ += [
    "ComputedTraitInvalid",
    "computed_trait_create",
    "computed_trait_delete",
    "computed_trait_recompute",
    "computed_trait_update",
    "computed_traits_install",
    "computed_traits_recompute_all",
    "computed_traits_recompute_enqueue",
    "computed_values_refresh",
]

# Trait classification and encryption at rest of sensitive traits (profiles.services.sensitive).
from profiles.services.sensitive import (  # noqa: E402
    ClassificationInvalid,
    sensitive_values_rotate,
    trait_classification_check,
    trait_classify,
    trait_policy_delete,
    trait_policy_save,
    trait_values_reseal,
)

__all__ += [
    "ClassificationInvalid",
    "sensitive_values_rotate",
    "trait_classification_check",
    "trait_classify",
    "trait_policy_delete",
    "trait_policy_save",
    "trait_values_reseal",
]
