from xerosync.cli import main

main()
