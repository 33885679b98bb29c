"""The release plan: one pure decision per run (plan.release), what it reads from the repository
(plan.repository), and the selection and tags it starts from."""
