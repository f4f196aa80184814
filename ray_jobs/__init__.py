"""The batch layer: ``stylecore``'s two-stage transfer over a manifest of pairs, on Ray.

Read the modules in the order a row travels through them:

- :mod:`ray_jobs.manifest`: the rows a job renders, read from JSONL, CSV or Parquet and checked whole;
- :mod:`ray_jobs.fingerprint`: what identifies a row's work (input file hashes, configuration hash);
- :mod:`ray_jobs.listing`: what a file is without reading it (size and time from its folder's listing);
- :mod:`ray_jobs.state`: the output's current state, one row per id, which a rerun reads instead of the history;
- :mod:`ray_jobs.plan`: what a run renders and why, hashing only the files that changed;
- :mod:`ray_jobs.resources`: how many actors, and which CPUs and GPUs each one gets;
- :mod:`ray_jobs.devices`: TensorFlow set up inside an actor (thread pools, GPU memory growth);
- :mod:`ray_jobs.worker`: the Ray actor that holds an extractor and renders one row at a time;
- :mod:`ray_jobs.pool`: hands rows to actors and collects outcomes as they finish;
- :mod:`ray_jobs.records`: one metadata row per item, as :mod:`ray_jobs.schema` defines it;
- :mod:`ray_jobs.outputs`: a row's image: where it goes, who writes it, how a rerun trusts it;
- :mod:`ray_jobs.metadata`: the Parquet files under ``OUTPUT/metadata/``;
- :mod:`ray_jobs.progress`: the console lines with done, failed, total and time left;
- :mod:`ray_jobs.job`: one run from rows to images and metadata;
- :mod:`ray_jobs.run_record`: the run in one JSON record (counts, medians, drift), for alerts and trends;
- :mod:`ray_jobs.render`: the command line (``python -m ray_jobs.render``);
- :mod:`ray_jobs.run_summary`, :mod:`ray_jobs.report`: a run read back, summarised, and shown as
  an HTML page with charts and a contact sheet (``python -m ray_jobs.report``).

The driver (manifest, listings, state, plan, metadata) never imports TensorFlow: only the
actors do (:mod:`ray_jobs.devices`), which keeps the driver's memory and start-up small.
"""
