"""Reading what TS license servers already hold: PowerShell ``Export-Csv`` files of
``Win32_TSLicenseKeyPack`` and ``Win32_TSIssuedLicense``.

``export_csv`` streams a file into typed rows, and ``wmi`` maps the WMI values onto the
portal's choices. Nothing here touches the database; the import service in
``licensing.services.imports`` plans and writes.
"""
