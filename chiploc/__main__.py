from chiploc.cli import main

raise SystemExit(main())
