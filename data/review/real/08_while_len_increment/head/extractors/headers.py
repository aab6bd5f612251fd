"""Find HTTP security headers configured in a service's source files: a `headers()` call and the lines after it."""


def detect_configurations(results):
    found_headers = {}
    for entry in results:
        lines = entry["content"]
        for line_nr, line in enumerate(lines):
            if "headers()" not in line:
                continue
            configuration = line.strip()
            counter = line_nr
            found = False
            while not found and counter < len(lines):
                counter += 1
                next_line = lines[counter].strip()
                if next_line.startswith("."):
                    configuration += next_line
                else:
                    found = True
            found_headers[entry["path"]] = configuration
    return found_headers
