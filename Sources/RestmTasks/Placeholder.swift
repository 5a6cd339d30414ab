import RestmCore
