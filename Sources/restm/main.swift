print("restm")
