from hydrus_motion.cli import main

raise SystemExit(main())
