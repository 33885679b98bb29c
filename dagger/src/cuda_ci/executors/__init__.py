"""The executors of a plan: the host (executors.host) and the Dagger module's node mapping
(executors.dagger_nodes, dagger_parts; the module's object is cuda_ci.main), and the run log both write."""
