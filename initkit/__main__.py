from initkit.cli import main

main()
