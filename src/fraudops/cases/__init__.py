"""Cases: the analyst review queue whose decisions become labels.

Every alert of the service opens a case (:mod:`fraudops.cases.intake`); analysts claim and
decide them in the console (``services/console``) on the store of :mod:`fraudops.cases.store`;
decisions reach the label store as labels with provenance (:mod:`fraudops.cases.labels`).
"""

#: Console roles: ``analyst`` claims and decides; ``lead`` also releases anyone's claim;
#: ``read-only`` views the queue and cases with ids hashed.
ANALYST, LEAD, READ_ONLY = "analyst", "lead", "read-only"
ROLES = (ANALYST, LEAD, READ_ONLY)
