from cuda_ci.cli import main

raise SystemExit(main())
