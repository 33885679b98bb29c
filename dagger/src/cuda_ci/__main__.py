from cuda_ci.cli.app import main

raise SystemExit(main())
