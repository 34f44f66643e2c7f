from tokenfix.entry import main

main()
