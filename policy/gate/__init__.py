"""The Gate and every rung of the decision ladder (ARCHITECTURE §4).

Guard, limits and loops, policy, pins, exact approvals, grants, memory, supervisor, pending; the read-only
preview the dry-run tools use; and the operator's actions on that state (`Operator`).
"""
