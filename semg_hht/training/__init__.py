"""train.py's workflow: its options, the steps from scanning a folder to the report, the encoder
trainer, SVM tuning, cross-validation and the resume rules. Uses every package below it."""
