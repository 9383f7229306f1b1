"""Reading and writing exchange formats (DICOM) beyond what SimpleITK does alone."""
