"""The service assistant: recognise the customer, understand what they want (German and
English), answer simple requests at once and route the rest to the right team."""
