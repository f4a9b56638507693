"""Class grading workflow: collect -> pre-check -> autograde -> feedback -> exports.

``python -m tpkit.grading`` (``__main__``) runs it; one module per concern:

``config``         every setting of a run, once (``TpkitGrading``: default, help, flag, floor), built with the
                   precedence defaults < nbgrader_config.py < flags; ``arguments``: the command's arguments
``options``        a run (course, assignment, settings), mapped to nbgrader's traitlets configuration;
                   nbgrader's ``CourseDirectory`` paths
``collect``        submissions from ``submitted/``, the bundled examples or an LMS's zip
``staging``        which notebook to grade, what else of the folder is staged (no link, no code)
``precheck``       cell checks against the gradebook and their repairs (plain nbgrader uses them too)
``pipeline``       the run: a worker process per submission, one gradebook writer; Ctrl-C stops it cleanly
``worker``         one submission graded in a process of its own; ``worker_result``: its result file,
                   checked by the coordinator; ``forkrelay``: its kernel forks relayed to the zygote;
                   ``manual_grades``: hand grades kept while what was graded is unchanged
``writeback``      a worker's result written into the course (gradebook, output folders)
``queue_order``    the order submissions are handed to workers (long and short in turns)
``results``        statuses (an enum), per-student results, the run's report and its JSON file
``gradebook``      every query of the gradebook, and the lock that serializes them
``findings``       both ends of the timeout / kernel-stop protocol (error outputs written, remarks read)
``kernels``        per-submission kernels (scratch and exchange folders), their limits derived from the run's
                   settings (``settings_for``); ``zygote_client``: the warm kernels' parent, this side
``sandbox``        bubblewrap around each kernel: own user and namespaces, no view of the course, limits;
                   ``sandbox_oneoff``: the probe, the kernel baseline and font list, measured once
``cgroups``        what this host allows for kernels' cgroups (detected once); ``kernel_cgroup``: one
                   kernel's group (limits, accounting, kill); ``isolation``: the run's line when not isolated
``executor``       the executor: a kernel from its supply, the run's limits, trusted checks
``trusted``        hidden checks run here, the kernel answering through the witness protocol
``traces``         flags for submissions that tried something against the grader or the system
``preprocessors``  nbgrader preprocessors of the kit (cell repairs, the executor named here too,
                   serialized gradebook access, output byte caps, student-safe feedback outputs)
``converters``     nbgrader's Autograde / GenerateFeedback as the run uses them (and for --export-only)
``feedback_exporter`` the French feedback page of every entry (also the formgrader, via nbgrader_config.py);
                   ``safehtml``: student HTML made inert; ``fast_html``: rendering costs paid once per process
``feedback``       what the feedback page says, the failure page (a template)
``export``         the class's exports: grades CSV (an nbgrader export plugin), previous exports set aside
``report``         terminal progress (elapsed, time left) and summary; ``logs``: one log per student
``classreport``    the class report page and figures; ``similarity``: pairs of very similar submissions
``lms``            one package per LMS (``lms.moodle``: ids, zip import, worksheet, feedback zip) and the
                   registry ``lms.LMS``, the only way in: another LMS is a package and one entry
``incremental``    fingerprints of a submission and of the grading code (a run skips what is unchanged and
                   resumes after Ctrl-C), the course's state (``etat.json``: the worksheet to refresh)
``runlock``        one grading or export run at a time on a course
``csvsafe``        CSV text cells that a spreadsheet never runs as formulas.
"""
