"""Pages the API serves to people: the review page, plain HTML, CSS and JavaScript."""
