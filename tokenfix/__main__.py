from tokenfix.cli import main

main()
