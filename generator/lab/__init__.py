"""Teaching labs: manifests, skeletons, payloads, self-check and grading.

A lab is data under module_templates/labs/<id>/ (docs/labs-format.md);
this package reads it (manifest.py), makes skeletons (skeleton.py), runs
checks in the VM and scores them (run.py), grades submissions (grade.py).
"""
