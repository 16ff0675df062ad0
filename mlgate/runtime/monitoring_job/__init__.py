"""The Evidently monitoring job (`monitoring.engine: evidently`): one run compares the last
window of an endpoint's captured traffic with the training baseline, scores the predictions
whose labels are due, writes an HTML report and a summary, and publishes CloudWatch metrics.

Runtime code only: no aws_cdk, no SageMaker SDK. It runs as a SageMaker Processing job in the
prebuilt scikit-learn image (a Python 3.12 one, e.g. framework version 1.4-2-py312) in script
mode: this folder is the source dir, `run.py` the entry point, and a `requirements.txt` beside
it (the repository's requirements-monitoring.lock: requirements-monitoring.txt's exact pins with
each wheel's sha256) is installed by pip when the job starts, so no image is built anywhere.
The wheels ship with the job (mlgate/infra/wheelsets.py): pip installs from them alone, with
`--no-index --require-hashes`, so a run needs no package index and no internet access.

Deployed, one run is three Processing steps (mlgate/infra/constructs/evidently.py): stage.py fetches
the windows and the released baseline (network; boto3 only), run.py judges them under network
isolation (`--release-file`, no AWS call), publish.py puts the summary's metrics (network;
boto3 only). `run.main` with the S3 options does all three in one process (tests, rehearsal).

Volume: memory stays flat as the window grows (window.py). The capture is read in chunks of
--chunk-records records (capture.CaptureStream); per chunk, the rows in the drift window update
exact per-feature counts (rows, missing, out of range) and a seeded uniform reservoir of at most
--sample-rows rows, which is what Evidently compares; the due window keeps at most as many
distinct inference ids (those of smallest seeded hash) with their last prediction, and only
their labels are kept. A window within the sample size is compared whole, exactly as before.
A sampled window's drift scores and model metrics carry their stated error (summary.json,
window.py for what each bound covers); the drift window's shares and rows, the due count and
the malformed count are exact, model quality's `rows` are the sample's joined rows. The
baseline CSV (the training split's payload columns) is still read whole: it grows with
the training data, not with the traffic.

Inputs (local paths, as Processing downloads them)
  --capture-dir         the endpoint's capture .jsonl files (any depth); they should cover the
                        drift window and, for model quality, the window shifted back by the
                        ground-truth delay: the job filters records by inferenceTime itself.
  --source              capture [default], or batch: --capture-dir holds a batch environment's
                        transform output (.out files, `id,<features...>,<prediction>` lines,
                        each file's moment its object's LastModified, recorded by the stage
                        step in objects.json); labels join on the id.
  --baseline            the training baseline CSV: header, feature columns, no label.
  --features            feature names in payload order (the capture's text/csv request rows).
  --feature-types       name:num|cat list; unlisted features are numeric.
  --feature-of          column=feature list: the feature each one-hot column carries.
  --window-hours        drift window: inferenceTime in (now - window, now]  [1].
  --now                 ISO time the window ends; default the current UTC time.
  --drift-threshold     drift is declared when the share of drifted features is above it [0.1].
  --feature-thresholds  name=score per-feature drift-score thresholds (default 0.1 each; the
                        score is a distance, drift when score >= threshold: see drift.py).
  --ground-truth-dir    ground-truth .jsonl (SageMaker's model-quality record, eventId = the
                        capture's inferenceId, else its eventId); enables model quality.
  --ground-truth-delay-hours  captures in (now - delay - window, now - delay] are scored [24].
  --problem-type        binary_classification | multiclass | regression.
  --metrics             e.g. precision,recall,auc,f1,accuracy,false_positive_rate (binary),
                        accuracy,precision,recall,f1,weighted_* (multiclass), rmse,mse,mae,r2.
  --probability-threshold  binary: class 1 when the output probability is at or above it [0.5].
  --sample-rows         rows Evidently compares, distinct ids model quality keeps [100000].
  --chunk-records       capture records read at a time [50000].
  --sample-seed         seed of the samples: the same inputs give the same result.

Outputs
  --report-dir/report.html    Evidently's report (drift per feature, data checks).
  --report-dir/summary.json   {"window", "capture": {records, malformed}, "drift": {"features":
                              {column: {feature, drift_score, drifted, test, threshold,
                              missing_share, out_of_range_share}}, "overall": {drifted_share
                              (of features: --feature-of groups one-hot columns),
                              drifted_features, features, drifted_columns, columns,
                              drift_detected, drift_threshold, rows}, "sample": {rows,
                              window_rows, sampled, seed, confidence, cdf_error}}, "quality":
                              {"window", due, rows, metrics: {name: value}, "sample": {ids,
                              usable, sampled, seed, confidence, share_error}}}. Each feature
                              also has score_error (0.0 unsampled). A feature with no value in
                              the window has drift_score null and counts as drifted.
  CloudWatch (--publish, in --namespace, every metric with the --dimensions Name=value pairs):
    feature_drift_score, missing_value_share, out_of_range_share   + dimension Feature
    drifted_feature_share, drift_detected (1 or 0), captured_rows, malformed_records
    model_<metric> for each --metrics name, labelled_rows
"""
